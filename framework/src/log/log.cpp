#include "log/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace rill::log {

spdlog::logger& get() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto created = spdlog::get("rill");
    if (!created) {
      created = spdlog::stderr_color_mt("rill");
      created->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%n] %v");
      if (const char* level = std::getenv("RILL_LOG_LEVEL"))
        created->set_level(spdlog::level::from_str(level));
    }
    return created;
  }();
  return *logger;
}

}  // namespace rill::log
