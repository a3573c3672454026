// librdkafka stops fetching a partition while its queue holds
// `queued.min.messages` records, and version 2.0 decides to fetch it again only
// when the broker thread serving it wakes up, which without other traffic
// happens once a second: a reader faster than that would sit idle. So a
// reader follows its queue's length and, once a held-back queue has drained to
// half the bound, sends the partition's leader a request whose arrival wakes
// the broker thread while half the bound is still left to read.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include <librdkafka/rdkafka.h>

namespace rill::kafka {

class FetchHoldBack {
 public:
  enum class Change { kNone, kHeldBack, kDrained };

  explicit FetchHoldBack(std::size_t queued_min_messages) : bound_(queued_min_messages) {}

  // The queue's length after a read of `taken` records: kHeldBack when it may
  // have reached the bound, kDrained when a held-back queue is down to half of
  // it (wake the fetcher). librdkafka compares the queue's length with the
  // bound as a fetch's records arrive, before the read took its share: only
  // arrivals happen between two reads, so the length before the read (`queued`
  // plus `taken`) is the most the queue held since the last one. Missing a
  // hold-back leaves the partition unfetched for a second.
  Change observe(std::size_t queued, std::size_t taken) {
    if (!held_back_.load(std::memory_order_relaxed)) {
      if (queued + taken < bound_) return Change::kNone;
      held_back_.store(true, std::memory_order_relaxed);
      return Change::kHeldBack;
    }
    if (queued > bound_ / 2) return Change::kNone;
    held_back_.store(false, std::memory_order_relaxed);
    return Change::kDrained;
  }

  // From any thread, for gauges.
  bool held_back() const { return held_back_.load(std::memory_order_relaxed); }

 private:
  const std::size_t bound_;
  std::atomic<bool> held_back_{false};
};

// Wakes the broker thread that fetches `partition` with the cheapest request
// to its leader, a watermark query. Blocks for one round trip: librdkafka
// 2.0.2 waits for the answer up to the consumer's socket.timeout.ms whatever
// timeout it is given, so a consumer that wakes fetchers bounds that.
inline void wake_fetcher(rd_kafka_t* consumer, const std::string& topic, int32_t partition) {
  int64_t low = 0, high = 0;
  rd_kafka_query_watermark_offsets(consumer, topic.c_str(), partition, &low, &high, 1000);
}

// Sends wake_fetcher's requests from a thread of its own, so that the thread
// that asks goes on reading meanwhile: a restore's reader, waking four
// partitions one round trip after another, spent a third of its time there.
class FetchWaker {
 public:
  explicit FetchWaker(rd_kafka_t* consumer);
  ~FetchWaker() { stop(); }
  FetchWaker(const FetchWaker&) = delete;
  FetchWaker& operator=(const FetchWaker&) = delete;

  // Returns at once; the partition's fetcher is woken soon after. A partition
  // asked for again before its request went out is woken once.
  void wake(const std::string& topic, int32_t partition);
  // Waits for a request under way, drops the others. Call before the
  // consumer is destroyed.
  void stop();

 private:
  void run();

  rd_kafka_t* consumer_;
  std::mutex mutex_;
  std::condition_variable requested_;
  std::set<std::pair<std::string, int32_t>> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace rill::kafka
