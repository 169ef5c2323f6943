#include "server/http/listener.h"

#include <chrono>

#include <fmt/format.h>

namespace warren::http {

std::string StartListening(httplib::Server& server, std::string_view what, const std::string& address,
                           uint16_t* port, std::thread* thread) {
  if (*port == 0) {
    const int bound = server.bind_to_any_port(address);
    if (bound < 0) return fmt::format("{}: cannot listen on {}:0", what, address);
    *port = static_cast<uint16_t>(bound);
  } else if (!server.bind_to_port(address, *port)) {
    return fmt::format("{}: cannot listen on {}:{} (port in use?)", what, address, *port);
  }
  *thread = std::thread([&server] { server.listen_after_bind(); });
  return {};
}

void StopListening(httplib::Server& server, std::thread& thread) {
  if (!thread.joinable()) return;
  // httplib's stop() only closes the socket of a server that is running: wait (briefly) for the
  // listener thread to get there when Stop follows Start closely.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.stop();
  thread.join();
}

}  // namespace warren::http
