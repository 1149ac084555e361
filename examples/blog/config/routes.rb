Rails.application.routes.draw do
  # The health check of Rails 7.1 (`rails/health#show`) does not exist in 6.1: HealthController.
  get "up" => "health#show", as: :rails_health_check

  resources :posts, only: [ :index, :show ]
  root "posts#index"
end
