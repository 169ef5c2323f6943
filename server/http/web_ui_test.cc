// The embedded web UI as a browser fetches it: the page at "/", each file with its type, and
// nothing else (other paths are left to the handlers behind it, here none: 404).
#include "server/http/web_ui.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "server/http/listener.h"

namespace warren::http {
namespace {

class WebUiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MountWebUi(server_);
    ASSERT_EQ(server_.Start("web UI test", "127.0.0.1", &port_), "");
  }
  void TearDown() override { server_.Stop(); }

  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(10, 0);
    return client.Get(path);
  }

  const WebUiAsset& Asset(std::string_view path) {
    for (const WebUiAsset& a : WebUiAssets()) {
      if (a.path == path) return a;
    }
    ADD_FAILURE() << "no asset " << path;
    return WebUiAssets().front();
  }

  HttpServer server_;
  uint16_t port_ = 0;
};

TEST_F(WebUiTest, RootIsTheIndexPage) {
  auto res = Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
  EXPECT_EQ(res->body, Asset("/index.html").body);
  EXPECT_NE(res->body.find("<script type=\"module\" src=\"app.js\">"), std::string::npos);
}

TEST_F(WebUiTest, EveryAssetIsServedWithItsType) {
  EXPECT_EQ(Asset("/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(Asset("/app.css").content_type, "text/css; charset=utf-8");
  for (const WebUiAsset& a : WebUiAssets()) {
    auto res = Get(std::string(a.path));
    ASSERT_TRUE(res) << a.path;
    EXPECT_EQ(res->status, 200) << a.path;
    EXPECT_EQ(res->get_header_value("Content-Type"), a.content_type) << a.path;
    EXPECT_EQ(res->body, a.body) << a.path;
    EXPECT_FALSE(a.body.empty()) << a.path;
  }
}

TEST_F(WebUiTest, OtherPathsAreNotServed) {
  // "/appXjs": an asset path is not a regular expression ('.' matches only itself).
  for (const char* path : {"/nope.html", "/appXjs", "/app.js/x", "/api/overview", "/index.htm"}) {
    auto res = Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
  }
}

}  // namespace
}  // namespace warren::http
