Post.find_or_create_by!(title: "Hello from kubectl-rails") do |post|
  post.body = "This post was created by db/seeds.rb."
end
