# GET /up: 200 when the app booted, 500 otherwise. Rails 7.1 ships this as
# Rails::HealthController (`rails/health#show`); Rails 6.1 has none, so here is the same.
# It touches no database: a probe on it says "this process serves", nothing more.
class HealthController < ActionController::Base
  rescue_from(Exception) { render_down }

  def show
    render_up
  end

  private

  def render_up
    render html: html_status(color: "green")
  end

  def render_down
    render html: html_status(color: "red"), status: 500
  end

  def html_status(color:)
    %(<!DOCTYPE html><html><body style="background-color: #{color}"></body></html>).html_safe
  end
end
