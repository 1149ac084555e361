class CreateHeartbeats < ActiveRecord::Migration[6.1]
  def change
    create_table :heartbeats do |t|
      t.string :hostname, null: false
      t.datetime :created_at, null: false
    end
  end
end
