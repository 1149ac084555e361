# Puma: `bin/rails server` reads this file.
threads_count = ENV.fetch("RAILS_MAX_THREADS") { 5 }
threads threads_count, threads_count

# All interfaces: the container's port is published or probed from outside.
bind "tcp://0.0.0.0:#{ENV.fetch("PORT") { 3000 }}"

environment ENV.fetch("RAILS_ENV") { "development" }
pidfile ENV.fetch("PIDFILE") { "tmp/pids/server.pid" }

# One line per request from Puma itself, beside Rails' Started/Completed lines.
log_requests true
