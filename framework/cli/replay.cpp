#include "replay.h"

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace rill::cli {
namespace {

std::tm utc_of(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  return tm;
}

std::string format(int64_t ms, const char* pattern, const char* fraction) {
  const std::tm tm = utc_of(ms);
  char text[64];
  std::size_t size = std::strftime(text, sizeof text, pattern, &tm);
  if (const int64_t millis = ((ms % 1000) + 1000) % 1000; millis != 0)
    size += static_cast<std::size_t>(
        std::snprintf(text + size, sizeof text - size, fraction, static_cast<int>(millis)));
  return std::string(text, size) + "Z";
}

std::string duration_text(int64_t seconds) {
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 3600)
    return std::to_string(seconds / 60) + "m" + std::to_string(seconds % 60) + "s";
  return std::to_string(seconds / 3600) + "h" + std::to_string(seconds / 60 % 60) + "m";
}

// On a terminal: one line, rewritten every second, with the records
// replayed, their rate, the event time reached and the time left.
class ReplayProgress {
 public:
  ReplayProgress(const KafkaStreams& streams, std::string until)
      : streams_(streams), until_(std::move(until)) {
    thread_ = std::thread([this] { run(); });
  }
  ~ReplayProgress() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    std::fprintf(stderr, "\n");
  }
  ReplayProgress(const ReplayProgress&) = delete;
  ReplayProgress& operator=(const ReplayProgress&) = delete;

 private:
  void run() {
    uint64_t last_processed = 0;
    double rate = 0;
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      const KafkaStreams::Stats stats = streams_.stats();
      const auto per_second = static_cast<double>(stats.processed_records - last_processed);
      last_processed = stats.processed_records;
      // Smoothed, so the time left does not jump with each second's batches.
      rate = rate == 0 ? per_second : 0.7 * rate + 0.3 * per_second;
      std::string line = "replaying to " + until_ + "  " + std::to_string(stats.processed_records) +
                         " records  " + std::to_string(static_cast<int64_t>(rate)) + "/s";
      if (stats.event_time_ms >= 0) line += "  at " + format_datetime(stats.event_time_ms);
      if (stats.pending_input_records >= 0) {
        line += "  " + std::to_string(stats.pending_input_records) + " left";
        if (rate >= 1)
          line += "  ETA " + duration_text(static_cast<int64_t>(
                                 static_cast<double>(stats.pending_input_records) / rate));
      }
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    }
  }

  const KafkaStreams& streams_;
  const std::string until_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

int64_t parse_datetime_ms(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr)
    throw std::invalid_argument("'" + text + "' is not a time like 2026-11-01T00:00:00Z");
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  if (*rest == '.') {
    int64_t fraction = 0, digits = 0;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, ++digits)
      if (digits < 3) fraction = fraction * 10 + (*rest - '0');
    for (; digits < 3; ++digits) fraction *= 10;
    ms += fraction;
  }
  if (*rest == 'Z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hours = 0, minutes = 0;
    if (std::sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2)
      throw std::invalid_argument("'" + text + "': expected an offset like +02:00");
    ms -= (*rest == '+' ? 1 : -1) * (hours * 60 + minutes) * 60'000LL;
    rest += 6;
  }
  if (*rest != '\0')
    throw std::invalid_argument("'" + text + "' is not a time like 2026-11-01T00:00:00Z");
  return ms;
}

std::string format_datetime(int64_t ms) {
  return format(ms, "%Y-%m-%dT%H:%M:%S", ".%03d");
}

std::string compact_datetime(int64_t ms) {
  return format(ms, "%Y%m%dT%H%M%S", ".%03d");
}

int run_replay(KafkaStreams& streams, const ReplayReport& report, bool progress,
               std::ostream& out) {
  int code = 0;
  {
    std::unique_ptr<ReplayProgress> line;
    if (progress) line = std::make_unique<ReplayProgress>(streams, report.until);
    code = run_until_signal(streams);
  }
  const KafkaStreams::Stats stats = streams.stats();
  if (code != 0) return code;
  if (!stats.replayed) {
    out << "rill replay: interrupted after " << stats.processed_records
        << " records; the same command continues from the last commit of application '"
        << report.application_id << "'\n";
    return 130;
  }
  out << "rill replay: replayed up to " << report.until << " as application '"
      << report.application_id << "' (" << stats.processed_records
      << " records processed, counting each sub-topology's)\n";
  for (const std::string& topic : report.output_topics)
    out << "  outputs as of " << report.until << ": " << topic << "\n";
  for (const std::string& topic : report.changelog_topics)
    out << "  a state store as of " << report.until << ": " << topic << "\n";
  return 0;
}

}  // namespace rill::cli
