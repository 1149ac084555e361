# The blog's own tiny asset precompile (Debian's Rails 6.1 packages come without Sprockets):
# each file of app/assets, with the app's version appended, is written to public/assets under a
# name that carries the SHA-256 of its content, as Sprockets and Propshaft fingerprint them, and
# public/assets/.manifest.json maps each logical name to its file. A new version gives new names,
# so a page of one release asks for files that the other release does not have.
# tests/cluster/images does the same in shell for the test images (it builds without Ruby).
require "digest"
require "fileutils"
require "json"

namespace :assets do
  desc "Fingerprint app/assets into public/assets"
  task :precompile do
    root = File.expand_path("../..", __dir__)
    version_file = File.join(root, "VERSION")
    version = File.exist?(version_file) ? File.read(version_file).strip : "development"
    out = File.join(root, "public/assets")
    FileUtils.mkdir_p(out)
    manifest = {}
    Dir.glob("*.{css,js}", base: File.join(root, "app/assets")).sort.each do |name|
      body = File.binread(File.join(root, "app/assets", name)) + "/* Blog #{version} */\n"
      ext = File.extname(name)
      file = "#{File.basename(name, ext)}-#{Digest::SHA256.hexdigest(body)}#{ext}"
      File.binwrite(File.join(out, file), body)
      manifest[name] = file
    end
    File.write(File.join(out, ".manifest.json"), JSON.generate(manifest) + "\n")
    puts "public/assets: #{manifest.values.join(", ")}"
  end
end
