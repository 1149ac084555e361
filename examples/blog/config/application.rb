require_relative "boot"

require "rails"
require "json"
# Only the frameworks the blog uses: boot stays fast.
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"

module Blog
  class Application < Rails::Application
    config.load_defaults 6.1

    # The version shown on every page: the image build writes /rails/VERSION per tag.
    version_file = config.root.join("VERSION")
    config.x.app_version = version_file.exist? ? version_file.read.strip : "development"

    # The fingerprinted asset names (lib/tasks/assets.rake writes the manifest).
    manifest = config.root.join("public/assets/.manifest.json")
    config.x.assets = manifest.exist? ? JSON.parse(manifest.read) : {}

    config.time_zone = "UTC"
  end
end
