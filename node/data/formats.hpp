#pragma once
// Internal to node/data: the file formats' encoders. They only produce bytes; dataset.cpp owns
// where those bytes go, so every format gets the same crash-safe writing.

#include <cstdint>
#include <functional>
#include <span>

#include "node/data/dataset.hpp"
#include "protocol/result.hpp"

namespace starling::data::detail {

// Receives encoded bytes in order; a failed chunk stops the encoder, which returns that error.
using ByteSink = std::function<Status(std::span<const std::uint8_t>)>;

// IDX: the images file (type 0x08, 3 dims) and the labels file (type 0x08, 1 dim) of a
// byte-stored dataset. Rows×columns is the squarest factorisation of `features`.
Status write_idx_images(const Dataset& ds, const ByteSink& sink);
Status write_idx_labels(const Dataset& ds, const ByteSink& sink);

// CSV: label, then the features as text that reads back exactly; no header line.
Status write_csv(const Dataset& ds, const ByteSink& sink);

}  // namespace starling::data::detail
