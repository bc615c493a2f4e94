// TrackPublisher (see track_publisher.hpp).
#include "track_publisher.hpp"

#include <algorithm>

#include "buffer_frame.hpp"

namespace arcly::gst {

MediaFrame TrackPublisher::make_config(std::int64_t pts) const {
  // In-band codecs carry their parameter sets as payload; others a copy of the
  // caps' codec_data/streamheader.
  Bytes payload = desc_.inband_parameter_sets ? params_ : desc_.config;
  MediaFrame f = MediaFrame::config(info_->kind, info_->codec, track_, std::move(payload), info_);
  f.pts = pts;
  return f;
}

MediaFrame TrackPublisher::on_caps(const GstCaps* caps, std::int64_t pts) {
  CapsDescription desc = describe_caps(caps);
  // Parameter sets of a different codec are meaningless; same codec keeps them
  // until the next keyframe brings fresh ones.
  if (!info_ || desc.codec != desc_.codec) params_ = {};
  desc_ = std::move(desc);
  info_ = track_info_from_caps(caps, track_);
  return make_config(pts);
}

std::vector<MediaFrame> TrackPublisher::on_buffer(GstBuffer* buffer, std::int64_t pts,
                                                  std::optional<std::int64_t> dts,
                                                  std::int64_t duration) {
  std::vector<MediaFrame> out;
  const bool keyframe = !GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  Bytes payload = bytes_from_buffer(buffer);

  if (keyframe && desc_.inband_parameter_sets) {
    Bytes params = extract_parameter_sets(desc_.codec, payload.span());
    if (!params.empty() && !std::ranges::equal(params.span(), params_.span())) {
      params_ = std::move(params);
      out.push_back(make_config(pts));
    }
  }

  MediaFrame f;
  f.kind = info_ ? info_->kind : MediaKind::Data;
  f.codec = info_ ? info_->codec : CodecId::Unknown;
  f.track = track_;
  f.pts = pts;
  f.dts = dts;
  f.duration = duration;
  f.payload = std::move(payload);
  f.info = meta_carrier(buffer);  // the publisher's metas, if any
  if (keyframe) f.flags |= FrameFlags::Keyframe;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_DISCONT)) f.flags |= FrameFlags::Discont;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_CORRUPTED)) f.flags |= FrameFlags::Corrupt;
  if (GST_BUFFER_FLAG_IS_SET(buffer, GST_BUFFER_FLAG_HEADER)) f.flags |= FrameFlags::Header;
  out.push_back(std::move(f));
  return out;
}

}  // namespace arcly::gst
