# One row per beat of bin/heartbeat (the worker process of the example).
class Heartbeat < ApplicationRecord
end
