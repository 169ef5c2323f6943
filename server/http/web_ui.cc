#include "server/http/web_ui.h"

#include <string>

#include <httplib.h>

namespace warren::http {

namespace {

// httplib matches handler patterns as regular expressions; an asset path must match only itself.
std::string ExactPattern(std::string_view path) {
  std::string out;
  for (char c : path) {
    if (std::string_view(R"(\^$.|?*+()[]{})").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

void Serve(httplib::Server& server, std::string_view path, const WebUiAsset& asset) {
  server.Get(ExactPattern(path), [&asset](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type));
  });
}

}  // namespace

void MountWebUi(httplib::Server& server) {
  for (const WebUiAsset& asset : WebUiAssets()) {
    Serve(server, asset.path, asset);
    if (asset.path == "/index.html") Serve(server, "/", asset);
  }
}

}  // namespace warren::http
