// Runs an httplib::Server on a thread of its own: the shared start/stop of the management API
// and the Prometheus endpoint.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include <httplib.h>

namespace warren::http {

// Binds `server` to address:*port (0 = any free port; the chosen one is written back) and
// starts listening on *thread. Returns an error message naming `what`, empty on success.
std::string StartListening(httplib::Server& server, std::string_view what, const std::string& address,
                           uint16_t* port, std::thread* thread);
// Stops a server started by StartListening and joins its thread. Idempotent.
void StopListening(httplib::Server& server, std::thread& thread);

}  // namespace warren::http
