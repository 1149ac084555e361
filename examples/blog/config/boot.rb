# No `require "bundler/setup"`: the image runs on the gems Debian installs with apt
# (ruby-rails 6.1.7.10, ruby-pg, puma), which RubyGems finds without Bundler. The Gemfile
# and Gemfile.lock record the same versions for anyone who runs the app with Bundler.
#
# Activate Rails up front, as Bundler would. Without this the first `require "rails/..."`
# activates the gem inside RubyGems' `rescue LoadError`, and every error of a command
# (a failed migration, a wrong RAILS_MASTER_KEY) ends with a misleading
# "Caused by: cannot load such file -- rails/commands (LoadError)".
gem "rails", "~> 6.1.7"
