// The logger every part of rill writes to.
#pragma once

#include <spdlog/spdlog.h>

namespace rill::log {

// The shared "rill" logger; its level and sinks are set once by the application.
spdlog::logger& get();

}  // namespace rill::log
