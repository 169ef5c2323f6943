// The management web UI: static HTML/CSS/JS from server/http/ui/, embedded into the binary at
// build time (embed_assets.py) and served beside the API on the management port. The pages are
// a client of the /api/... endpoints only; serving them needs no broker state, so these
// handlers answer on the HTTP threads without posting to the broker thread.
#pragma once

#include <span>
#include <string_view>

namespace httplib {
class Server;
}

namespace warren::http {

struct WebUiAsset {
  std::string_view path;  // URL path, e.g. "/app.js"
  std::string_view content_type;
  std::string_view body;
};

// Every embedded file (defined in the generated web_ui_assets.cc).
std::span<const WebUiAsset> WebUiAssets();

// Registers GET handlers for "/" (index.html) and each asset's path, with its Content-Type and
// `Cache-Control: no-cache` (an upgraded server must never run with a stale script). Other paths
// are left to handlers registered later, so call it before any catch-all.
void MountWebUi(httplib::Server& server);

}  // namespace warren::http
