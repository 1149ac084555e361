require_relative "boot"

require "rails"
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

    config.time_zone = "UTC"
  end
end
