#include "crypto/trust_wire.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "protocol/limits.hpp"

namespace starling::crypto::trust_wire {

std::uint8_t* WipingAllocator::allocate(std::size_t size) {
    return std::allocator<std::uint8_t>().allocate(size);
}

void WipingAllocator::deallocate(std::uint8_t* p, std::size_t size) {
    sodium_memzero(p, size);
    std::allocator<std::uint8_t>().deallocate(p, size);
}

AlignedBytes::AlignedBytes(std::span<const std::uint8_t> bytes) : view_(bytes) {
    if (bytes.empty() ||
        reinterpret_cast<std::uintptr_t>(bytes.data()) % alignof(std::uint64_t) == 0)
        return;
    copy_.resize((bytes.size() + sizeof(std::uint64_t) - 1) / sizeof(std::uint64_t));
    std::memcpy(copy_.data(), bytes.data(), bytes.size());
    view_ = {reinterpret_cast<const std::uint8_t*>(copy_.data()), bytes.size()};
}

AlignedBytes::~AlignedBytes() {
    sodium_memzero(copy_.data(), copy_.size() * sizeof(std::uint64_t));
}

Error malformed(std::string_view record, const std::string& what) {
    return make_error(ErrorCode::malformed, std::string(record) + ": " + what);
}

template <class Table>
Result<const Table*> verified_root(std::span<const std::uint8_t> bytes, const char* identifier,
                                   std::uint32_t max_tables, std::string_view record) {
    flatbuffers::Verifier::Options options;
    options.max_depth = limits::kFlatbuffersMaxDepth;
    options.max_tables = max_tables;
    flatbuffers::Verifier verifier(bytes.data(), bytes.size(), options);
    if (!verifier.VerifySizePrefixedBuffer<Table>(identifier))
        return malformed(record, std::string("not a well-formed '") + identifier +
                                     "' FlatBuffer (size prefix, identifier, bounds, required "
                                     "fields, depth or table count)");
    return flatbuffers::GetSizePrefixedRoot<Table>(bytes.data());
}

template Result<const wire::Certificate*> verified_root(std::span<const std::uint8_t>, const char*,
                                                        std::uint32_t, std::string_view);
template Result<const wire::Revocation*> verified_root(std::span<const std::uint8_t>, const char*,
                                                       std::uint32_t, std::string_view);
template Result<const wire::KeyEpochAnnouncement*> verified_root(std::span<const std::uint8_t>,
                                                                 const char*, std::uint32_t,
                                                                 std::string_view);
template Result<const wire::EnrollmentBundle*> verified_root(std::span<const std::uint8_t>,
                                                             const char*, std::uint32_t,
                                                             std::string_view);
template Result<const wire::ClusterSecrets*> verified_root(std::span<const std::uint8_t>,
                                                           const char*, std::uint32_t,
                                                           std::string_view);

Status read_exact(const flatbuffers::Vector<std::uint8_t>* field, std::span<std::uint8_t> out,
                  std::string_view name, std::string_view record) {
    const std::size_t found = field == nullptr ? 0 : field->size();
    if (found != out.size())
        return malformed(record, std::string(name) + " must be " + std::to_string(out.size()) +
                                     " bytes, is " + std::to_string(found));
    std::copy(field->begin(), field->end(), out.begin());
    return Ok{};
}

flatbuffers::Offset<wire::Certificate> build_certificate(flatbuffers::FlatBufferBuilder& fbb,
                                                         const Certificate& cert) {
    const auto cluster = bytes_field(fbb, cert.cluster);
    const auto device = bytes_field(fbb, cert.device);
    const auto name = fbb.CreateString(cert.name);
    const auto sign_key = bytes_field(fbb, cert.sign_key);
    const auto kx_key = bytes_field(fbb, cert.kx_key);
    const auto signature = bytes_field(fbb, cert.signature);
    return wire::CreateCertificate(fbb, cluster, device, name,
                                   static_cast<wire::DeviceRole>(cert.role), sign_key, kx_key,
                                   cert.not_before, cert.not_after, cert.serial, signature);
}

Result<Certificate> read_certificate(const wire::Certificate& table, std::string_view record) {
    Certificate cert;
    const std::string_view name(table.name()->c_str(), table.name()->size());
    if (Status s = check_name(name, std::string(record) + " name"); !s) return s.error();
    cert.name = std::string(name);
    const std::string where = std::string(record) + " '" + cert.name + "'";
    for (Status s : {read_exact(table.cluster(), cert.cluster, "cluster id", where),
                     read_exact(table.device(), cert.device, "device id", where),
                     read_exact(table.sign_key(), cert.sign_key, "signing key", where),
                     read_exact(table.kx_key(), cert.kx_key, "key-exchange key", where),
                     read_exact(table.signature(), cert.signature, "signature", where)})
        if (!s) return s.error();
    const auto role = static_cast<std::uint8_t>(table.role());
    if (role > static_cast<std::uint8_t>(Role::observer))
        return malformed(where, "unknown role " + std::to_string(role));
    cert.role = static_cast<Role>(role);
    cert.not_before = table.not_before();
    cert.not_after = table.not_after();
    cert.serial = table.serial();
    if (cert.not_before > cert.not_after) return malformed(where, "not_before is after not_after");
    return cert;
}

flatbuffers::Offset<wire::NetworkKeyEpoch> build_epoch(flatbuffers::FlatBufferBuilder& fbb,
                                                       const NetworkKeyEpoch& epoch) {
    const auto key = bytes_field(fbb, epoch.key.bytes());
    return wire::CreateNetworkKeyEpoch(fbb, epoch.epoch, key, epoch.not_before, epoch.not_after);
}

Result<NetworkKeyEpoch> read_epoch(const wire::NetworkKeyEpoch& table, std::string_view record) {
    NetworkKeyEpoch epoch;
    epoch.epoch = table.epoch();
    const std::string where = std::string(record) + " epoch " + std::to_string(epoch.epoch);
    if (epoch.epoch == 0) return malformed(where, "epochs start at 1");
    if (Status s = read_exact(table.key(), epoch.key.bytes(), "key", where); !s) return s.error();
    epoch.not_before = table.not_before();
    epoch.not_after = table.not_after();
    if (epoch.not_before > epoch.not_after)
        return malformed(where, "not_before is after not_after");
    return epoch;
}

}  // namespace starling::crypto::trust_wire
