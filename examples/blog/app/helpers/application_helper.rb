module ApplicationHelper
  def app_version
    Rails.configuration.x.app_version
  end

  # The fingerprinted file of a logical asset name (`application.css`), from the manifest
  # `bin/rails assets:precompile` wrote; the plain name before any precompile (development).
  def fingerprinted(name)
    "/assets/#{Rails.configuration.x.assets.fetch(name, name)}"
  end
end
