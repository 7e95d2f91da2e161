// Node timings for tests on 127.0.0.1: links that notice a dead peer within a second and
// redial within half a second, and gossip five times a second, so that every wait for the
// cluster to settle is short and bounded.
#pragma once

#include <chrono>

#include "cluster/node_options.hpp"

namespace deltacrdt::testing {

inline void use_quick_timings(NodeOptions& o) {
  using namespace std::chrono_literals;
  o.link.handshake_timeout = 1s;
  o.link.heartbeat_interval = 100ms;
  o.link.idle_timeout = 1s;
  o.reconnect_min = 50ms;
  o.reconnect_max = 500ms;
  o.gossip_interval = 200ms;
}

}  // namespace deltacrdt::testing
