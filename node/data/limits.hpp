#pragma once
// Upper bounds on what a dataset file may declare, checked before anything is allocated, so a
// lying header cannot make a small device reserve gigabytes.

#include <cstddef>
#include <cstdint>

namespace starling::data {

// Values per example: 1 MiB of pixels is far beyond any image a node trains on.
inline constexpr std::uint64_t kMaxFeatureCount = std::uint64_t{1} << 20;

// Examples per split: 64 Mi, so an example index always fits a uint32.
inline constexpr std::uint64_t kMaxExampleCount = std::uint64_t{1} << 26;

// Bytes a loaded split may occupy in memory (uint8 pixels or float values).
inline constexpr std::uint64_t kMaxDatasetBytes = std::uint64_t{1} << 31;

// Labels are one byte, so at most 256 classes.
inline constexpr std::uint32_t kMaxClassCount = 256;

// Bytes in one CSV line: a 784-feature row is about 4 KiB; this bounds a file with no newlines.
inline constexpr std::size_t kMaxCsvLineBytes = std::size_t{1} << 26;

}  // namespace starling::data
