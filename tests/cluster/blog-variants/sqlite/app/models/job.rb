# A job the web process runs (lib/puma/plugin/jobs.rb).
class Job < ApplicationRecord
end
