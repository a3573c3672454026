#include "archive.h"

#include <cstdio>

#include <fmt/format.h>

#include "archive/archiver.h"

namespace rill::cli {
namespace {

archive::ArchiveRequest request_for(const ArchiveCommand& command, const std::string& topic) {
  archive::ArchiveRequest request;
  request.topic = topic;
  request.consumer_properties = command.config.client_properties("consumer");
  request.consumer_properties["bootstrap.servers"] =
      command.config.get_string(config::kBootstrapServers);
  request.until_offset = command.until_offset;
  request.until_ms = command.until_ms;
  request.segment_bytes = command.segment_bytes;
  if (command.progress)
    request.progress = [topic, verify = command.verify](int32_t partition, uint64_t done,
                                                        uint64_t total) {
      std::fprintf(stderr, "\r\033[K%s %s[%d]: %llu of %llu records",
                   verify ? "verifying" : "archiving", topic.c_str(), partition,
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
      std::fflush(stderr);
    };
  return request;
}

}  // namespace

int run_archive(const ArchiveCommand& command, std::ostream& out, std::ostream& err) {
  archive::Archive archive(
      objects::open_location(command.location, command.config, config::kArchiveLocation));
  const char* name = command.verify ? "rill archive --verify" : "rill archive";
  int code = 0;
  for (const std::string& topic : command.topics) {
    const archive::ArchiveRequest request = request_for(command, topic);
    try {
      if (command.verify) {
        for (const archive::PartitionVerified& partition :
             archive::verify_archive(archive, request)) {
          if (command.progress) std::fprintf(stderr, "\r\033[K");
          out << fmt::format(
              "{}: {}[{}]: {} segments, {} records compared with the topic, {} no longer in it "
              "checked by checksum: {}\n",
              name, topic, partition.partition, partition.segments, partition.compared,
              partition.checksum_only, partition.problems.empty() ? "sound" : "NOT sound");
          for (const std::string& problem : partition.problems) err << "  " << problem << "\n";
          if (!partition.problems.empty()) code = 1;
        }
      } else {
        for (const archive::PartitionArchived& partition :
             archive::archive_topic(archive, request)) {
          if (command.progress) std::fprintf(stderr, "\r\033[K");
          out << fmt::format(
              "{}: {}[{}]: offsets [{}, {}) archived, {} records in {} segments "
              "({})\n",
              name, topic, partition.partition, partition.from, partition.to, partition.records,
              partition.segments, archive.index_address(topic, partition.partition));
        }
      }
    } catch (const std::exception& e) {
      if (command.progress) std::fprintf(stderr, "\r\033[K");
      err << name << ": " << topic << ": " << e.what() << "\n";
      code = 1;
    }
  }
  return code;
}

}  // namespace rill::cli
