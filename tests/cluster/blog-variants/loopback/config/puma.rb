# Puma: `bin/rails server` reads this file.
threads_count = ENV.fetch("RAILS_MAX_THREADS") { 5 }
threads threads_count, threads_count

# Loopback only, unless BIND_ADDRESS says otherwise (a default some apps ship).
bind "tcp://#{ENV.fetch("BIND_ADDRESS", "127.0.0.1")}:#{ENV.fetch("PORT") { 3000 }}"

environment ENV.fetch("RAILS_ENV") { "development" }
pidfile ENV.fetch("PIDFILE") { "tmp/pids/server.pid" }

# One line per request from Puma itself, beside Rails' Started/Completed lines.
log_requests true
