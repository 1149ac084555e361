Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
  config.consider_all_requests_local = false
  config.action_controller.perform_caching = true

  # Fail at boot, not at the first request, when neither RAILS_MASTER_KEY nor
  # config/master.key is there (the image does not contain the key).
  config.require_master_key = true

  config.public_file_server.enabled = ENV["RAILS_SERVE_STATIC_FILES"].present?

  # Behind a TLS-terminating proxy: X-Forwarded-Proto says https. The health check
  # answers over plain HTTP (probes and Kamal's proxy call it without the header).
  config.force_ssl = true
  config.ssl_options = { redirect: { exclude: ->(request) { request.path == "/up" } } }

  # Host authorization (Rails 6.1 supports `exclude` here, like 7.x): blog.example.com and the
  # hosts of its other environments (staging.example.com, pr-7.example.com, ...).
  config.hosts = [ ".example.com" ]
  config.host_authorization = { exclude: ->(request) { request.path == "/up" } }

  config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "info").to_sym
  config.log_tags = [ :request_id ]
  config.log_formatter = ::Logger::Formatter.new
  if ENV["RAILS_LOG_TO_STDOUT"].present?
    logger = ActiveSupport::Logger.new($stdout)
    logger.formatter = config.log_formatter
    config.logger = ActiveSupport::TaggedLogging.new(logger)
  end

  config.i18n.fallbacks = true
  config.active_support.deprecation = :notify
  config.active_support.disallowed_deprecation = :log
  config.active_support.disallowed_deprecation_warnings = []

  # The app folder is read-only at runtime: migrations must not write db/schema.rb.
  config.active_record.dump_schema_after_migration = false
end
