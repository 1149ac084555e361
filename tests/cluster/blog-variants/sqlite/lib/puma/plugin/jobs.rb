# Runs the app's jobs in the Puma process: every pending row of `jobs` is done and marked with
# the host (the pod) that did it. What Solid Queue's Puma plugin does for Rails 8 apps, reduced
# to what the tests need. Puma starts a plugin's background block once the app is loaded.
require "puma/plugin"
require "socket"

Puma::Plugin.create do
  def start(_launcher)
    in_background do
      loop do
        Rails.application.executor.wrap do
          Job.where(done_at: nil).find_each do |job|
            job.update!(done_at: Time.now, done_by: Socket.gethostname)
          end
        end
      rescue StandardError => e
        warn "jobs: #{e.class}: #{e.message}"
      ensure
        sleep 0.5
      end
    end
  end
end
