#pragma once
// Internal to crypto/: the FlatBuffers plumbing the trust records share (certificate.cpp,
// cluster_wire.cpp), so each length check and each table's reader is written once.

#include <flatbuffers/flatbuffers.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/certificate.hpp"
#include "crypto/keyring.hpp"
#include "crypto/keys.hpp"
#include "protocol/result.hpp"
#include "protocol/trust_generated.h"

namespace starling::crypto::trust_wire {

namespace wire = starling::wire;

// File identifiers, one per root (the schema's header comment lists them too).
inline constexpr char kCertificateId[] = "SCRT";
inline constexpr char kRevocationId[] = "SREV";
inline constexpr char kKeyAnnouncementId[] = "SKEA";
inline constexpr char kBundleId[] = "SBND";
inline constexpr char kClusterSecretsId[] = "SCLS";

// A FlatBufferBuilder allocator that wipes every buffer it releases: for records with secrets.
class WipingAllocator final : public flatbuffers::Allocator {
  public:
    std::uint8_t* allocate(std::size_t size) override;
    void deallocate(std::uint8_t* p, std::size_t size) override;
};

// Untrusted bytes at an address FlatBuffers can read in place: the input itself when it is
// 8-byte aligned, otherwise a copy (wiped when this dies, in case it held secrets).
class AlignedBytes {
  public:
    explicit AlignedBytes(std::span<const std::uint8_t> bytes);
    ~AlignedBytes();
    AlignedBytes(const AlignedBytes&) = delete;
    AlignedBytes& operator=(const AlignedBytes&) = delete;
    std::span<const std::uint8_t> view() const noexcept { return view_; }

  private:
    std::vector<std::uint64_t> copy_;  // uint64 elements: 8-byte alignment
    std::span<const std::uint8_t> view_;
};

// The root of a size-prefixed buffer once the Verifier (identifier, bounds, required fields,
// limits::kFlatbuffersMaxDepth, `max_tables`) accepts it; malformed otherwise.
template <class Table>
Result<const Table*> verified_root(std::span<const std::uint8_t> bytes, const char* identifier,
                                   std::uint32_t max_tables, std::string_view record);

Error malformed(std::string_view record, const std::string& what);

// A byte-vector field of exactly out.size() bytes, copied into `out`; malformed otherwise.
Status read_exact(const flatbuffers::Vector<std::uint8_t>* field, std::span<std::uint8_t> out,
                  std::string_view name, std::string_view record);

inline flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>> bytes_field(
    flatbuffers::FlatBufferBuilder& fbb, std::span<const std::uint8_t> bytes) {
    return fbb.CreateVector(bytes.data(), bytes.size());
}

flatbuffers::Offset<wire::Certificate> build_certificate(flatbuffers::FlatBufferBuilder& fbb,
                                                         const Certificate& cert);
// Lengths, name, role and window shape; the signature is verify_certificate's business.
Result<Certificate> read_certificate(const wire::Certificate& table, std::string_view record);

flatbuffers::Offset<wire::NetworkKeyEpoch> build_epoch(flatbuffers::FlatBufferBuilder& fbb,
                                                       const NetworkKeyEpoch& epoch);
Result<NetworkKeyEpoch> read_epoch(const wire::NetworkKeyEpoch& table, std::string_view record);

}  // namespace starling::crypto::trust_wire
