// The whole public engine API in one include.
#pragma once

#include "arcly/bus.hpp"
#include "arcly/bytes.hpp"
#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/frame_ref.hpp"
#include "arcly/gop_cache.hpp"
#include "arcly/inbound.hpp"
#include "arcly/media_frame.hpp"
#include "arcly/qos.hpp"
#include "arcly/readiness.hpp"
#include "arcly/record.hpp"
#include "arcly/stream.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/subscription.hpp"
#include "arcly/tcp_server.hpp"
#include "arcly/worker_events.hpp"
