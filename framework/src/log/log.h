// The loggers every part of rill writes to: "rill" for rill's own lines and
// "librdkafka" for the lines librdkafka logs, both to the same stderr sink.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace rill::log {

// The shared "rill" logger. Its level starts from RILL_LOG_LEVEL (default info).
spdlog::logger& get();
// librdkafka's own log lines, routed through the same sink and format.
spdlog::logger& librdkafka();

// Applies log.format ("text" or "json": one JSON object per line) and, when
// not empty, log.level to both loggers. The loggers are shared by the whole
// process, so the last application configured wins.
void configure(std::string_view format, std::string_view level);

}  // namespace rill::log
