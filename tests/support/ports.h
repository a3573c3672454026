// Ports for servers that tests start.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include <catch2/catch.hpp>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace rill::testing {

// A port nothing listens on now, below the range the kernel picks the local
// ports of outgoing connections from (32768 and up by default): a port of
// that range, free while its instance restarts, may be taken by a client's
// connection in the meantime.
inline int free_port() {
  // Starting where the clock says, so that test programs run one after the
  // other do not all try the same ports first.
  static std::atomic<int> next{
      20'000 +
      static_cast<int>(std::chrono::system_clock::now().time_since_epoch().count() % 10'000)};
  for (int tries = 0; tries < 2'000; ++tries) {
    const int port = next.fetch_add(1);
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool bound = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    close(fd);
    if (bound) return port;
  }
  FAIL("no free port below 32768");
  return 0;
}

}  // namespace rill::testing
