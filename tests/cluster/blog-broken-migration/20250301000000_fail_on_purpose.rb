# The extra migration of the blog-3.0.0-broken-migration test image (tests/cluster/images copies
# it into db/migrate): it always fails, so a deploy of that image must stop at its migration and
# leave the running release alone.
class FailOnPurpose < ActiveRecord::Migration[6.1]
  def up
    raise "this migration fails on purpose (kubectl-rails test image)"
  end

  def down
  end
end
