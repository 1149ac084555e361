# A release that boots, passes `/up`, and fails every request to its main page: what a deploy's
# readiness cannot see and `deploy --bake` must.
class PostsController < ApplicationController
  def index
    raise "this page fails on purpose (blog-variants/broken-page)"
  end

  def show
    @post = Post.find(params[:id])
  end
end
