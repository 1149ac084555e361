Rails.application.configure do
  config.enable_reloading = false
  config.eager_load = true
  config.assume_ssl = true
  config.force_ssl = true
  config.ssl_options = { redirect: { exclude: ->(request) { request.path == "/up" } } }
  config.log_tags = [ :request_id ]
  config.logger = ActiveSupport::TaggedLogging.logger(STDOUT)
  config.active_job.queue_adapter = :solid_queue
  config.hosts = [ "blog.example.com" ]
  config.host_authorization = { exclude: ->(request) { request.path == "/up" } }
end
