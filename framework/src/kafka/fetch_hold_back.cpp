#include "kafka/fetch_hold_back.h"

namespace rill::kafka {

FetchWaker::FetchWaker(rd_kafka_t* consumer) : consumer_(consumer) {
  thread_ = std::thread([this] { run(); });
}

void FetchWaker::wake(const std::string& topic, int32_t partition) {
  {
    std::lock_guard lock(mutex_);
    pending_.emplace(topic, partition);
  }
  requested_.notify_one();
}

void FetchWaker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  requested_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void FetchWaker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    requested_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    const auto [topic, partition] = pending_.extract(pending_.begin()).value();
    lock.unlock();
    wake_fetcher(consumer_, topic, partition);
    lock.lock();
  }
}

}  // namespace rill::kafka
