# Puma: `bin/rails server` reads this file. The SQLite variant runs its jobs inside Puma, as
# Rails 8 apps do with Solid Queue's plugin (`plugin :solid_queue`): Debian's Rails 6.1 has no
# Solid Queue, so a plugin of ours (lib/puma/plugin/jobs.rb) does the same with a jobs table.
threads_count = ENV.fetch("RAILS_MAX_THREADS") { 5 }
threads threads_count, threads_count

bind "tcp://0.0.0.0:#{ENV.fetch("PORT") { 3000 }}"

environment ENV.fetch("RAILS_ENV") { "development" }
pidfile ENV.fetch("PIDFILE") { "tmp/pids/server.pid" }

log_requests true

$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
plugin :jobs
