#include "state/task_snapshots.h"

#include <system_error>

#include "log/log.h"
#include "state/state_manager.h"

namespace rill::state {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kStopUploads{30};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t since_ms(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

}  // namespace

TaskSnapshots::TaskSnapshots(std::unique_ptr<ObjectStore> store, std::string application_id,
                             std::string root, std::chrono::milliseconds interval,
                             std::size_t retained, fs::path staging)
    : store_(std::move(store)),
      application_id_(std::move(application_id)),
      root_(std::move(root)),
      interval_(interval),
      retained_(retained),
      staging_(std::move(staging)) {
  std::error_code ignored;
  fs::remove_all(staging_, ignored);  // checkpoints an earlier run left unsent
  uploader_ = std::thread([this] { run(); });
}

TaskSnapshots::~TaskSnapshots() {
  stop();
}

void TaskSnapshots::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) stop_deadline_ = Clock::now() + kStopUploads;
    stopping_ = true;
  }
  changed_.notify_all();
  if (uploader_.joinable()) uploader_.join();
  std::error_code ignored;
  fs::remove_all(staging_, ignored);
}

std::unique_ptr<TaskSnapshots> TaskSnapshots::from_config(const StreamsConfig& config,
                                                          const fs::path& state_directory) {
  const auto interval = config.get_duration(config::kSnapshotIntervalMs);
  if (interval.count() <= 0) return nullptr;
  const std::string application_id = config.get_string(config::kApplicationId);
  std::string location = config.get_string(config::kSnapshotLocation);
  if (location.empty()) location = (state_directory.parent_path() / "snapshots").string();
  objects::ObjectLocation opened =
      objects::open_location(location, config, config::kSnapshotLocation);
  return std::make_unique<TaskSnapshots>(
      std::move(opened.store), application_id, opened.key(application_id), interval,
      static_cast<std::size_t>(config.get_int(config::kSnapshotsRetained)),
      state_directory / ".snapshots");
}

std::string TaskSnapshots::prefix_of(const TaskId& task) const {
  return root_ + "/" + task.to_string() + "/";
}

void TaskSnapshots::after_commit(const TaskId& task, StateManager& state) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
  }
  const auto now = Clock::now();
  const uint64_t requested = requested_.load(std::memory_order_relaxed);
  uint64_t& answered = requests_answered_[task];
  if (auto last = last_taken_.find(task);
      last != last_taken_.end() && now - last->second < interval_ && answered == requested)
    return;
  Upload upload{task, {}, new_snapshot_id(wall_ms()), wall_ms(), {}};
  upload.directory = staging_ / (task.to_string() + "-" + upload.id);
  try {
    upload.offsets = state.snapshot_to(upload.directory);
  } catch (const std::exception& e) {
    last_taken_[task] = now;  // tried again after the interval
    answered = requested;
    log::get().warn("{}: task {}: no snapshot this time: {}", application_id_, task.to_string(),
                    e.what());
    failed_.fetch_add(1, std::memory_order_relaxed);
    std::error_code ignored;
    fs::remove_all(upload.directory, ignored);
    return;
  }
  // Nothing persistent and logged to keep yet: the next commit tries again.
  if (upload.offsets.empty()) return;
  last_taken_[task] = now;
  answered = requested;
  upload.checkpoint_ms = since_ms(now);
  log::get().debug("{}: task {}: snapshot {} taken in {} ms", application_id_, task.to_string(),
                   upload.id, since_ms(now));
  {
    std::lock_guard lock(mutex_);
    uploads_.push_back(std::move(upload));
  }
  changed_.notify_all();
}

void TaskSnapshots::run() {
  while (true) {
    Upload upload;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || !uploads_.empty(); });
      // When the instance stops, the snapshots taken so far (the last
      // commit's among them) are uploaded for up to kStopUploads; those left
      // then are dropped: the snapshots before them stay.
      if (uploads_.empty() || (stopping_ && Clock::now() >= stop_deadline_)) {
        if (stopping_) return;
        continue;
      }
      upload = std::move(uploads_.front());
      uploads_.pop_front();
    }
    const auto start = Clock::now();
    const std::string prefix = prefix_of(upload.task);
    try {
      const SnapshotManifest manifest = upload_snapshot(
          *store_, prefix, upload.directory, upload.id, upload.created_ms, upload.offsets);
      uint64_t bytes = 0;
      for (const SnapshotFile& file : manifest.files) bytes += file.size;
      const std::size_t pruned = prune_snapshots(*store_, prefix, retained_);
      uploaded_.fetch_add(1, std::memory_order_relaxed);
      uploaded_bytes_.fetch_add(bytes, std::memory_order_relaxed);
      last_upload_ms_.store(wall_ms(), std::memory_order_relaxed);
      const int64_t duration_ms = upload.checkpoint_ms + since_ms(start);
      last_duration_ms_.store(duration_ms, std::memory_order_relaxed);
      total_duration_ms_.fetch_add(static_cast<uint64_t>(duration_ms), std::memory_order_relaxed);
      log::get().info("{}: task {}: snapshot {} uploaded to {} ({} files, {} bytes) in {} ms{}",
                      application_id_, upload.task.to_string(), upload.id,
                      store_->address(prefix + upload.id), manifest.files.size(), bytes,
                      since_ms(start),
                      pruned > 0 ? "; " + std::to_string(pruned) + " older deleted" : "");
    } catch (const std::exception& e) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      log::get().warn("{}: task {}: snapshot {} not uploaded: {}", application_id_,
                      upload.task.to_string(), upload.id, e.what());
    }
    std::error_code ignored;
    fs::remove_all(upload.directory, ignored);
  }
}

bool TaskSnapshots::restore_if_empty(const TaskId& task, const fs::path& task_directory) {
  if (!read_checkpoint(task_directory).empty()) return false;
  const auto start = Clock::now();
  const fs::path download_directory = staging_ / (task.to_string() + "-download");
  const SnapshotDownload download = download_newest_snapshot(
      *store_, prefix_of(task), download_directory,
      [this, counted = uint64_t{0}](uint64_t left) mutable {
        // Tasks download side by side: each adds its own part.
        download_bytes_left_.fetch_add(left - counted, std::memory_order_relaxed);
        counted = left;
      });
  for (const std::string& skipped : download.skipped)
    log::get().warn("{}: task {}: a snapshot was not used: {}", application_id_, task.to_string(),
                    skipped);
  if (!download.manifest) {
    if (!download.skipped.empty()) {
      fallbacks_.fetch_add(1, std::memory_order_relaxed);
      log::get().warn("{}: task {}: no snapshot could be used; restoring from the changelogs",
                      application_id_, task.to_string());
    }
    return false;
  }
  try {
    install_snapshot(download_directory, *download.manifest, task_directory);
  } catch (const std::exception& e) {
    log::get().warn(
        "{}: task {}: snapshot {} could not be installed ({}); restoring from the "
        "changelogs",
        application_id_, task.to_string(), download.manifest->id, e.what());
    std::error_code ignored;
    fs::remove_all(download_directory, ignored);
    fallbacks_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  restores_.fetch_add(1, std::memory_order_relaxed);
  log::get().info("{}: task {}: restored snapshot {} in {} ms; the changelogs' tail follows",
                  application_id_, task.to_string(), download.manifest->id, since_ms(start));
  return true;
}

}  // namespace rill::state
