// Everything a rill application may use, in one include. Programs that want
// to compile faster include only what they use:
//
//   rill/streams_builder.h   the DSL: streams, tables, grouping, windows
//                            (rill/kgrouped_stream.h, rill/ktable.h and
//                            rill/global_ktable.h for the types it returns)
//   rill/processor.h         the Processor API; rill/state.h for its stores
//   rill/kafka_streams.h     running a topology: KafkaStreams, StreamsConfig
//   rill/json.h              JSON keys and values (brings in nlohmann/json)
//   rill/test_driver.h       TopologyTestDriver, for tests without a broker
//   rill/version.h           the version of rill a program was built with
#pragma once

#include "rill/config.h"
#include "rill/global_ktable.h"
#include "rill/json.h"
#include "rill/kafka_streams.h"
#include "rill/kgrouped_stream.h"
#include "rill/ktable.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"
#include "rill/version.h"
#include "rill/windows.h"
