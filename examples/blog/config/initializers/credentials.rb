# Read the encrypted credentials at boot. Rails reads them lazily (at the first request
# needing secret_key_base); reading them here makes a wrong RAILS_MASTER_KEY stop every
# process (server, runner, rake, bin/heartbeat) at boot with
# ActiveSupport::MessageEncryptor::InvalidMessage instead of failing requests later.
Rails.application.credentials.config
Rails.application.secret_key_base
