#include "sinks/postgres_sink.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "rill/json.h"

#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/producer.h"
#include "kafka/records.h"
#include "log/log.h"
#include "runtime/error_handling.h"
#include "sinks/postgres_writer.h"

namespace rill::sinks {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kCallTimeout{30000};
constexpr std::chrono::milliseconds kIdlePoll{100};

int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A column's text as PostgreSQL takes it: strings as they are, numbers and
// booleans as JSON writes them, objects and arrays as JSON (for json and
// jsonb columns); null is SQL NULL.
std::optional<std::string> column_text(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// The dead-letter topic's record could not be delivered: the batch waits.
class DeadLetterError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A rejected row under RejectedRows::kFail.
class RejectedRowError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

class PostgresSink::Loop {
 public:
  Loop(PostgresSinkSettings settings, std::size_t number)
      : settings_(std::move(settings)),
        number_(number),
        writer_(settings_.table, settings_.application_id, settings_.sink, settings_.topic) {
    status_.sink = settings_.sink;
    status_.table = settings_.table.table;
    status_.unavailable_since_ms = epoch_ms();
    status_.last_error = "not connected yet";
  }

  void open() {
    auto consumer = settings_.consumer_properties;
    consumer["group.id"] = settings_.application_id + "-" + settings_.sink;
    consumer["partition.assignment.strategy"] = "cooperative-sticky";
    consumer["enable.auto.commit"] = "false";
    consumer["enable.auto.offset.store"] = "false";
    // Only committed rows: under exactly-once the topic holds aborted ones.
    consumer["isolation.level"] = "read_committed";
    consumer["auto.offset.reset"] = "earliest";
    consumer["client.id"] += client_suffix();
    kafka::ConfPtr conf = settings_.make_conf(consumer);
    kafka::set_opaque(conf.get(), this);
    kafka::on_rebalance(conf.get(), [](rd_kafka_t*, rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t* partitions, void* opaque) {
      // Nothing may be thrown through librdkafka: step() raises it after the poll.
      auto* loop = static_cast<Loop*>(opaque);
      try {
        loop->on_rebalance(err, kafka::from_list(*partitions));
      } catch (...) {
        loop->callback_error_ = std::current_exception();
      }
    });
    consumer_ = kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
    kafka::redirect_events_to_consumer(consumer_.get());

    auto producer = settings_.producer_properties;
    producer["client.id"] += client_suffix();
    producer["enable.idempotence"] = "true";
    kafka::ConfPtr producer_conf = settings_.make_conf(producer);
    kafka::set_opaque(producer_conf.get(), this);
    kafka::on_delivery(
        producer_conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
          if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            static_cast<Loop*>(opaque)->delivery_error_ = kafka::describe(message->err);
        });
    producer_ = kafka::make_client(RD_KAFKA_PRODUCER, std::move(producer_conf));
    dead_letters_ = kafka::open_topic(producer_.get(), settings_.dead_letter_topic);
    kafka::subscribe(consumer_.get(), {settings_.topic});
  }

  void run() {
    std::thread database([this] { write_batches(); });
    bool failed = false;
    while (!stopping.load() && !failed) {
      try {
        step();
      } catch (const RejectedRowError& e) {
        if (settings_.fail) settings_.fail(e.what());
        failed = true;
      } catch (const std::exception& e) {
        // A client call that failed as a whole: the batch goes, the
        // partitions resume from the database's offsets.
        unavailable(e.what());
      }
    }
    if (!failed && connected_ && (!batch_.offsets.empty() || outstanding_ > 0)) {
      try {
        flush();
      } catch (const std::exception& e) {
        log::get().warn("sink {}: closing without writing its last batch: {}", settings_.sink,
                        e.what());
      }
    }
    {
      std::lock_guard lock(queue_mutex_);
      database_stopping_ = true;
    }
    queue_changed_.notify_all();
    database.join();
    closing_ = true;
    kafka::give_up_assignment(consumer_.get(), std::chrono::seconds(10));
    kafka::close_consumer(consumer_.get());
    kafka::flush(producer_.get(), kCallTimeout);
  }

  metrics::SinkValues status() const {
    std::lock_guard lock(status_mutex_);
    return status_;
  }

  std::string client_suffix() const {
    return "-sink-" + settings_.sink + (number_ > 0 ? "-" + std::to_string(number_) : "");
  }

  std::atomic<bool> stopping{false};

 private:
  struct Partition {
    // The database's offset is read and the consumer seeks from it.
    bool claimed = false;
    // The offset the database holds (-1: nothing applied yet).
    int64_t written = -1;
    // The next record to take: records before it are stale.
    int64_t position = 0;
  };

  struct Raw {
    std::string key;
    std::optional<std::string> value;
  };

  void step() {
    claim_when_due();
    std::chrono::milliseconds timeout = kIdlePoll;
    if (!batch_.offsets.empty())
      timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(
                               batch_started_ + settings_.table.linger - Clock::now()),
                           std::chrono::milliseconds(0), kIdlePoll);
    kafka::MessagePtr message = kafka::poll_record(consumer_.get(), timeout);
    if (callback_error_) std::rethrow_exception(std::exchange(callback_error_, nullptr));
    if (message) {
      if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        take(*message);
      else if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        log::get().debug("sink {}: {}", settings_.sink, kafka::error_of(*message));
    }
    take_written(false);
    // Rows that came while a batch was being written have waited for the
    // database already: they go as soon as it is free, however few.
    if (!batch_.offsets.empty() &&
        (taken_ >= settings_.table.batch_size || (outstanding_ == 0 && taken_while_writing_) ||
         Clock::now() >= batch_started_ + settings_.table.linger))
      submit();
    update_lag();
  }

  // Connects when due and reads where each partition without its database
  // offset resumes.
  void claim_when_due() {
    std::vector<int32_t> unclaimed;
    for (const auto& [partition, state] : partitions_)
      if (!state.claimed) unclaimed.push_back(partition);
    if (connected_ && unclaimed.empty()) return;
    if (Clock::now() < next_attempt_) return;
    try {
      take_written(true);
      if (!connected_) {
        writer_.connect();
        connected_ = true;
      }
      claim(unclaimed, true);
    } catch (const DatabaseUnavailable& e) {
      unavailable(e.what());
      return;
    }
    available();
  }

  // Reads the partitions' offsets from the database; assigned ones seek
  // there and resume.
  std::vector<kafka::TopicPartition> claim(const std::vector<int32_t>& partitions, bool assigned) {
    std::vector<kafka::TopicPartition> positions;
    if (partitions.empty()) return positions;
    const std::map<int32_t, int64_t> offsets = writer_.claim(partitions);
    for (int32_t partition : partitions) {
      auto it = offsets.find(partition);
      const int64_t written = it == offsets.end() ? -1 : it->second;
      Partition& state = partitions_[partition];
      state = {true, written, std::max<int64_t>(written, 0)};
      positions.push_back(
          {settings_.topic, partition, written < 0 ? RD_KAFKA_OFFSET_BEGINNING : written});
    }
    if (assigned) {
      for (const auto& result : kafka::consumer_of(consumer_.get())->seek(positions))
        if (result.error != RD_KAFKA_RESP_ERR_NO_ERROR)
          throw std::runtime_error("cannot seek " + result.to_string() + ": " +
                                   kafka::describe(result.error));
      kafka::resume(consumer_.get(), positions);
    }
    return positions;
  }

  void on_rebalance(rd_kafka_resp_err_t err, std::vector<kafka::TopicPartition> partitions) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      std::vector<int32_t> numbers;
      for (const auto& tp : partitions) {
        numbers.push_back(tp.partition);
        partitions_[tp.partition] = {};
      }
      std::vector<kafka::TopicPartition> positions;
      if (connected_) {
        try {
          take_written(true);
          positions = claim(numbers, false);
        } catch (const DatabaseUnavailable& e) {
          unavailable(e.what());
        }
      }
      if (positions.empty()) {
        // Fetched from nowhere in particular until the database answers.
        kafka::incremental_assign(consumer_.get(), partitions);
        kafka::pause(consumer_.get(), partitions);
      } else {
        kafka::incremental_assign(consumer_.get(), positions);
      }
      log::get().info("sink {}: assigned {} partitions of {}", settings_.sink, partitions.size(),
                      settings_.topic);
      return;
    }
    // What is taken from the partitions is written while they are still
    // ours (a partition lost to another writer is refused by its offsets).
    if (!closing_ && connected_ && (!batch_.offsets.empty() || outstanding_ > 0)) {
      try {
        flush();
      } catch (const RejectedRowError&) {
        callback_error_ = std::current_exception();
      } catch (const std::exception& e) {
        unavailable(e.what());
      }
    }
    std::set<int32_t> revoked;
    for (const auto& tp : partitions) revoked.insert(tp.partition);
    for (int32_t partition : revoked) partitions_.erase(partition);
    if (std::any_of(batch_.offsets.begin(), batch_.offsets.end(),
                    [&](const auto& entry) { return revoked.contains(entry.first); }))
      drop_batch();
    kafka::incremental_unassign(consumer_.get(), partitions);
  }

  void take(const rd_kafka_message_t& message) {
    auto it = partitions_.find(message.partition);
    if (it == partitions_.end() || !it->second.claimed || message.offset < it->second.position)
      return;
    Partition& state = it->second;
    state.position = message.offset + 1;
    if (batch_.offsets.empty()) batch_started_ = Clock::now();
    if (outstanding_ > 0) taken_while_writing_ = true;
    auto& offsets = batch_.offsets[message.partition];
    if (offsets.next < 0) offsets.expected = state.written;
    offsets.next = message.offset + 1;
    ++taken_;

    Raw raw;
    raw.key = kafka::key_of(message);
    if (const std::string_view value = kafka::value_of(message); value.data() != nullptr)
      raw.value.emplace(value);
    SinkRow row;
    row.partition = message.partition;
    row.offset = message.offset;
    if (std::string error = decode(raw, row); !error.empty()) {
      undecodable_.push_back({std::move(row), std::move(raw), std::move(error)});
      return;
    }
    batch_.rows.push_back(std::move(row));
    raws_.push_back(std::move(raw));
  }

  // The row's column texts in the table's order; an error names what is wrong.
  std::string decode(const Raw& raw, SinkRow& row) const {
    try {
      const nlohmann::json key = serdes::detail::parse_json(raw.key);
      if (!key.is_object()) return "the key is not a JSON object of key columns";
      for (const auto& column : settings_.table.key_columns) {
        auto it = key.find(column.name);
        if (it == key.end() || it->is_null())
          return "key column '" + column.name + "' is missing or null";
        row.columns.push_back(column_text(*it));
      }
      if (key.size() != settings_.table.key_columns.size())
        return "the key has fields that are not key columns: " + key.dump();
      if (!raw.value) {
        row.deletion = true;
        return {};
      }
      const nlohmann::json value = serdes::detail::parse_json(*raw.value);
      if (!value.is_object()) return "the value is not a JSON object of columns";
      std::size_t known = 0;
      for (const auto& column : settings_.table.value_columns) {
        auto it = value.find(column.name);
        if (it != value.end()) ++known;
        row.columns.push_back(it == value.end() ? std::nullopt : column_text(*it));
      }
      if (known != value.size())
        return "the value has fields that are not columns of the sink: " + value.dump();
    } catch (const nlohmann::json::exception& e) {
      return std::string("not a row: ") + e.what();
    }
    return {};
  }

  // Hands the batch to the database thread, waiting while the one before
  // it is still queued: the next batch fills while one is written, and the
  // thread takes the queued one as soon as it is done.
  void submit() {
    take_written(false);
    if (batch_.offsets.empty()) return;
    auto batch = std::make_unique<InFlight>();
    batch->batch = std::move(batch_);
    batch->raws = std::move(raws_);
    batch->undecodable = std::move(undecodable_);
    drop_batch();
    // Rows taken from here on follow the batch: they expect its offsets.
    for (const auto& [partition, offsets] : batch->batch.offsets)
      if (auto it = partitions_.find(partition); it != partitions_.end())
        it->second.written = offsets.next;
    {
      std::unique_lock lock(queue_mutex_);
      queue_changed_.wait(lock, [this] { return !queued_; });
      queued_ = std::move(batch);
    }
    queue_changed_.notify_all();
    ++outstanding_;
  }

  // The database thread: writes the queued batches in order.
  void write_batches() {
    std::unique_lock lock(queue_mutex_);
    for (;;) {
      queue_changed_.wait(lock, [this] { return queued_ || database_stopping_; });
      if (!queued_) return;
      std::unique_ptr<InFlight> batch = std::move(queued_);
      writing_ = true;
      lock.unlock();
      queue_changed_.notify_all();
      try {
        // Rows no database would take go to the dead-letter topic first:
        // once the batch commits, its offsets are past them.
        for (const auto& bad : batch->undecodable) reject(bad.row, bad.raw, bad.error);
        InFlight* written = batch.get();
        batch->outcome = writer_.write(batch->batch, [this, written](const SinkRow& row,
                                                                     const std::string& error) {
          ++written->refused;
          reject(row, written->raws.at(static_cast<std::size_t>(&row - written->batch.rows.data())),
                 error);
        });
      } catch (...) {
        batch->error = std::current_exception();
      }
      lock.lock();
      writing_ = false;
      const bool failed = batch->error != nullptr;
      written_.push_back(std::move(batch));
      // The batch after a failed one is not written: the loop reads the
      // offsets again.
      if (failed && queued_) {
        queued_->skipped = true;
        written_.push_back(std::move(queued_));
      }
      any_written_.store(true, std::memory_order_release);
      queue_changed_.notify_all();
    }
  }

  // Takes the outcomes of the batches the database thread has written, after
  // waiting for every batch handed to it when `wait`; rethrows what a write
  // threw.
  void take_written(bool wait) {
    // Called for every record: no lock unless a batch is done.
    if (outstanding_ == 0 || (!wait && !any_written_.load(std::memory_order_acquire))) return;
    std::deque<std::unique_ptr<InFlight>> done;
    {
      std::unique_lock lock(queue_mutex_);
      if (wait) queue_changed_.wait(lock, [this] { return !queued_ && !writing_; });
      done.swap(written_);
      any_written_.store(false, std::memory_order_relaxed);
    }
    outstanding_ -= done.size();
    for (const auto& batch : done) {
      if (batch->skipped) continue;
      if (batch->error) std::rethrow_exception(batch->error);
      if (batch->outcome == PostgresWriter::Outcome::kStale) {
        log::get().warn(
            "sink {}: another writer moved the database's offsets of partitions this instance "
            "holds (a rebalance in progress); reading them again",
            settings_.sink);
        // What was taken since expects offsets that never were, and so does
        // a batch queued behind this one (the database refuses it too).
        drop_batch();
        take_written(true);
        std::vector<int32_t> partitions;
        for (const auto& [partition, state] : partitions_) partitions.push_back(partition);
        claim(partitions, true);
        return;
      }
      std::vector<kafka::TopicPartition> committed;
      for (const auto& [partition, offsets] : batch->batch.offsets)
        committed.push_back({settings_.topic, partition, offsets.next});
      kafka::commit_async(consumer_.get(), committed);
      std::lock_guard lock(status_mutex_);
      status_.rows_written += batch->batch.rows.size() - batch->refused;
      status_.batches += 1;
    }
  }

  // Writes what is taken and waits for it.
  void flush() {
    submit();
    take_written(true);
  }

  void reject(const SinkRow& row, const Raw& raw, const std::string& error) {
    {
      std::lock_guard lock(status_mutex_);
      ++status_.rows_rejected;
    }
    const std::string origin =
        settings_.topic + "[" + std::to_string(row.partition) + "]@" + std::to_string(row.offset);
    switch (settings_.table.rejected_rows) {
      case RejectedRows::kFail:
        throw RejectedRowError("the " + writer_.describe() + " rejected the row at " + origin +
                               ": " + error);
      case RejectedRows::kLogAndContinue:
        log::get().warn("sink {}: skipped the row at {}: {}", settings_.sink, origin, error);
        return;
      case RejectedRows::kDeadLetter:
        break;
    }
    namespace header = runtime::dead_letter_header;
    kafka::HeadersPtr headers = kafka::make_headers(5);
    auto add = [&](const char* name, const std::string& text) {
      kafka::add_header(headers.get(), name, text.data(), text.size());
    };
    add(header::kException, "rill.PostgresRowRejected");
    add(header::kMessage, error);
    add(header::kTopic, settings_.topic);
    add(header::kPartition, std::to_string(row.partition));
    add(header::kOffset, std::to_string(row.offset));
    delivery_error_.clear();
    if (kafka::ErrorPtr refused =
            kafka::produce(producer_.get(), dead_letters_.get(), -1, raw.key,
                           raw.value ? std::string_view(*raw.value) : std::string_view(),
                           epoch_ms(), headers, nullptr))
      throw DeadLetterError(
          kafka::Error(refused, "cannot dead-letter the row at " + origin).what());
    if (kafka::flush(producer_.get(), kCallTimeout) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        !delivery_error_.empty())
      throw DeadLetterError("the dead-letter topic '" + settings_.dead_letter_topic +
                            "' did not take the row at " + origin + ": " +
                            (delivery_error_.empty() ? "timed out" : delivery_error_));
    log::get().warn("sink {}: the row at {} went to {}: {}", settings_.sink, origin,
                    settings_.dead_letter_topic, error);
  }

  void drop_batch() {
    batch_.rows.clear();
    batch_.offsets.clear();
    raws_.clear();
    undecodable_.clear();
    taken_ = 0;
    taken_while_writing_ = false;
  }

  // The database is away or refuses: what was taken goes, the partitions wait
  // for their offsets to be read again.
  void unavailable(const std::string& error) {
    if (outstanding_ > 0) {
      // Their outcomes do not matter: the offsets are read again.
      std::unique_lock lock(queue_mutex_);
      if (queued_) {
        queued_->skipped = true;
        written_.push_back(std::move(queued_));
      }
      queue_changed_.wait(lock, [this] { return !writing_; });
      written_.clear();
      any_written_.store(false, std::memory_order_relaxed);
      outstanding_ = 0;
    }
    writer_.disconnect();
    connected_ = false;
    drop_batch();
    std::vector<kafka::TopicPartition> held;
    for (auto& [partition, state] : partitions_) {
      state.claimed = false;
      held.push_back({settings_.topic, partition});
    }
    try {
      kafka::pause(consumer_.get(), held);
    } catch (const std::exception&) {
      // Records of unclaimed partitions are ignored anyway.
    }
    backoff_ = std::clamp(backoff_ * 2, kMinBackoff, settings_.max_backoff);
    next_attempt_ = Clock::now() + backoff_;
    bool first = false;
    {
      std::lock_guard lock(status_mutex_);
      first = status_.available;
      if (status_.available) status_.unavailable_since_ms = epoch_ms();
      status_.available = false;
      status_.last_error = error;
      ++status_.failures;
    }
    log::get().warn("sink {}: {}; {}trying again in {} ms", settings_.sink, error,
                    first ? "rows wait in the topic; " : "", backoff_.count());
  }

  void available() {
    backoff_ = std::chrono::milliseconds(0);
    std::lock_guard lock(status_mutex_);
    if (status_.available) return;
    const int64_t down = epoch_ms() - status_.unavailable_since_ms;
    status_.available = true;
    status_.last_error.clear();
    log::get().info("sink {}: writing to the {} (after {} ms)", settings_.sink, writer_.describe(),
                    down);
  }

  void update_lag() {
    const auto now = Clock::now();
    if (now < next_lag_update_) return;
    next_lag_update_ = now + std::chrono::seconds(1);
    int64_t lag = 0;
    for (const auto& [partition, state] : partitions_) {
      const auto marks = kafka::fetched_watermarks(consumer_.get(), settings_.topic, partition);
      if (!marks || !state.claimed) {
        lag = -1;
        break;
      }
      lag += std::max<int64_t>(0, marks->high - std::max<int64_t>(state.written, marks->low));
    }
    std::lock_guard lock(status_mutex_);
    status_.lag = lag;
  }

  struct Undecodable {
    SinkRow row;
    Raw raw;
    std::string error;
  };

  // A batch the database thread writes.
  struct InFlight {
    SinkBatch batch;
    std::vector<Raw> raws;
    std::vector<Undecodable> undecodable;
    // Rows the database refused.
    std::size_t refused = 0;
    PostgresWriter::Outcome outcome = PostgresWriter::Outcome::kWritten;
    std::exception_ptr error;
    // Not written: a batch before it failed.
    bool skipped = false;
  };

  PostgresSinkSettings settings_;
  // Which of the instance's writers of the sink (PostgresTable::connections).
  std::size_t number_;
  PostgresWriter writer_;
  kafka::KafkaPtr consumer_;
  kafka::KafkaPtr producer_;
  kafka::TopicPtr dead_letters_;
  std::string delivery_error_;
  std::exception_ptr callback_error_;
  std::map<int32_t, Partition> partitions_;
  SinkBatch batch_;
  // The records of batch_.rows as they came, for the dead-letter topic.
  std::vector<Raw> raws_;
  std::vector<Undecodable> undecodable_;
  std::size_t taken_ = 0;
  bool taken_while_writing_ = false;
  // Batches handed to the database thread whose outcome the loop has not
  // taken yet.
  std::size_t outstanding_ = 0;
  // Shared with the database thread, under queue_mutex_.
  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::unique_ptr<InFlight> queued_;
  bool writing_ = false;
  std::deque<std::unique_ptr<InFlight>> written_;
  // written_ is not empty: the loop looks without the lock.
  std::atomic<bool> any_written_{false};
  bool database_stopping_ = false;
  Clock::time_point batch_started_;
  Clock::time_point next_attempt_;
  Clock::time_point next_lag_update_;
  std::chrono::milliseconds backoff_{0};
  bool closing_ = false;
  // The loop's view of the writer's connection: the writer itself is the
  // database thread's while a batch is in flight.
  bool connected_ = false;
  mutable std::mutex status_mutex_;
  metrics::SinkValues status_;
};

PostgresSink::PostgresSink(PostgresSinkSettings settings) {
  for (std::size_t number = 0; number < std::max<std::size_t>(settings.table.connections, 1);
       ++number)
    loops_.push_back(std::make_unique<Loop>(settings, number));
}

PostgresSink::~PostgresSink() {
  stop();
}

void PostgresSink::start() {
  for (auto& loop : loops_) loop->open();
  for (auto& loop : loops_) threads_.emplace_back([&loop] { loop->run(); });
}

void PostgresSink::stop() {
  for (auto& loop : loops_) loop->stopping.store(true);
  for (auto& thread : threads_)
    if (thread.joinable()) thread.join();
}

metrics::SinkValues PostgresSink::status() const {
  metrics::SinkValues all = loops_.front()->status();
  for (std::size_t i = 1; i < loops_.size(); ++i) {
    const metrics::SinkValues one = loops_[i]->status();
    if (!one.available && (all.available || one.unavailable_since_ms < all.unavailable_since_ms)) {
      all.unavailable_since_ms = one.unavailable_since_ms;
      all.last_error = one.last_error;
    }
    all.available = all.available && one.available;
    all.rows_written += one.rows_written;
    all.rows_rejected += one.rows_rejected;
    all.batches += one.batches;
    all.failures += one.failures;
    all.lag = all.lag < 0 || one.lag < 0 ? -1 : all.lag + one.lag;
  }
  return all;
}

}  // namespace rill::sinks
