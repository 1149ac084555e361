module ApplicationHelper
  def app_version
    Rails.configuration.x.app_version
  end
end
