#include "log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

namespace rill::log {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%n] %v";
// %* is the message with JSON escapes (JsonEscapedMessage below).
constexpr const char* kJsonPattern =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","thread":%t,"message":"%*"})";

class JsonEscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : message.payload) {
      switch (c) {
        case '"':
          out.append(std::string_view("\\\""));
          break;
        case '\\':
          out.append(std::string_view("\\\\"));
          break;
        case '\n':
          out.append(std::string_view("\\n"));
          break;
        case '\r':
          out.append(std::string_view("\\r"));
          break;
        case '\t':
          out.append(std::string_view("\\t"));
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            const char escaped[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
            out.append(escaped, escaped + sizeof(escaped));
          } else {
            out.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(std::string_view format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<JsonEscapedMessage>('*').set_pattern(format == "json" ? kJsonPattern
                                                                            : kTextPattern);
  return formatter;
}

std::shared_ptr<spdlog::logger> make_logger(const char* name,
                                            const std::vector<spdlog::sink_ptr>& sinks) {
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
  logger->set_formatter(make_formatter("text"));
  if (const char* level = std::getenv("RILL_LOG_LEVEL"))
    logger->set_level(spdlog::level::from_str(level));
  spdlog::register_logger(logger);
  return logger;
}

struct Loggers {
  // A "rill" logger the application registered first is kept, and librdkafka's
  // lines go to its sinks.
  Loggers()
      : rill(make_logger("rill", {std::make_shared<spdlog::sinks::stderr_color_sink_mt>()})),
        librdkafka(make_logger("librdkafka", rill->sinks())) {}
  std::shared_ptr<spdlog::logger> rill;
  std::shared_ptr<spdlog::logger> librdkafka;
};

Loggers& loggers() {
  static Loggers instance;
  return instance;
}

}  // namespace

spdlog::logger& get() {
  return *loggers().rill;
}

spdlog::logger& librdkafka() {
  return *loggers().librdkafka;
}

void configure(std::string_view format, std::string_view level) {
  for (auto* logger : {loggers().rill.get(), loggers().librdkafka.get()}) {
    logger->set_formatter(make_formatter(format));
    if (!level.empty()) logger->set_level(spdlog::level::from_str(std::string(level)));
  }
}

}  // namespace rill::log
