// Everything a rill application includes.
#pragma once

#include "rill/config.h"
#include "rill/global_ktable.h"
#include "rill/kgrouped_stream.h"
#include "rill/ktable.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"
#include "rill/windows.h"
