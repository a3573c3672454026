// Tells a restore that has stopped reading from one that waits at its
// changelog's end.
#pragma once

#include <chrono>
#include <cstdint>

namespace rill::state {

// librdkafka has left a restoring partition unfetched for minutes, with no
// error, after a broker restart moved its leader: the restore never ended and
// its task never ran. A restore that reads nothing for `limit` while its
// consumer has not told it is at the partition's end is stalled; the reader
// then assigns the partition anew. At the consumer's end (under exactly-once
// below a transaction still open, see ChangelogReader::start_restores) the
// restore waits for the cluster, not for the fetch.
class RestoreWatch {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RestoreWatch(Clock::time_point started) : progressed_at_(started) {}

  // Once per turn of the reader: where the restore reads next, and whether
  // the consumer told it that offset is the partition's end. True when it is
  // stalled; the watch then starts over.
  bool stalled(int64_t next_offset, bool at_consumer_end, Clock::time_point now,
               Clock::duration limit) {
    if (next_offset != watched_offset_ || at_consumer_end) {
      watched_offset_ = next_offset;
      progressed_at_ = now;
      return false;
    }
    if (now - progressed_at_ < limit) return false;
    progressed_at_ = now;
    return true;
  }

 private:
  int64_t watched_offset_ = -1;
  Clock::time_point progressed_at_;
};

}  // namespace rill::state
