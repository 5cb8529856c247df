// How the ranks of an NCCL job find each other before NCCL exists: which rank this process is, and
// how rank 0's unique id (ncclUniqueId: 128 opaque bytes) reaches the others. No NCCL or CUDA in
// here, so every build compiles and tests it.
//
// The id travels, in this order of preference:
//   1. MPI_Bcast, when the build has MPI and an MPI launcher started the process (mpirun, srun --mpi=pmix);
//   2. NCCL_COMM_ID=HOST:PORT, NCCL's own variable, set alike for every rank: each rank asks NCCL for
//      the id, which it then derives from that address, and rank 0 serves the rendezvous there;
//   3. LDM_NCCL_ID_FILE: a path every rank can read (a shared filesystem), unique to this job (put the
//      job id in it): rank 0 writes the id there atomically, the others wait for it (LDM_NCCL_ID_TIMEOUT
//      seconds, default 120) and accept it only when it was written for a world of their size.
// (An id made by another process is no good: rank 0's process must serve the rendezvous it names.)
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace ldm::worker {

// This process's place in the job, as its launcher says: Open MPI (OMPI_COMM_WORLD_RANK/SIZE), SLURM
// (SLURM_PROCID/SLURM_NTASKS), PMI (PMI_RANK/PMI_SIZE), torchrun-style (RANK/WORLD_SIZE) or ours
// (LDM_RANK/LDM_WORLD_SIZE); a world of one when none is set. `source` names the variables used.
// Throws Error naming the variable when one is not a number or the rank is outside the world.
struct LaunchPlace {
  int rank = 0, size = 1;
  std::string source = "none (a world of one)";
};
LaunchPlace launch_place_from_environment();

// The id file's text: "ldm-nccl-id 1 WORLD HEX\n" (hex of the id's bytes), and its reading, which
// throws Error naming `path` when the text is not that or the id is not `id_bytes` long. `world` is
// set to the world size the file was written for.
std::string format_id_file(int world, const std::string& id);
std::string parse_id_file(const std::string& text, std::size_t id_bytes, const std::string& path, int& world);

// The file form of the exchange (3. above). Rank 0 writes `root_id` (ignored on the others); every
// rank returns the id. `sleep` waits between polls (tests pass a fake); `timeout_s` bounds the wait.
// Throws Error naming the file on a timeout, a malformed file or a file written for another world size.
std::string exchange_id_through_file(const std::string& path, int rank, int world, const std::string& root_id,
                                     std::size_t id_bytes, double timeout_s,
                                     const std::function<void(double)>& sleep = {});

// The id by route 2 or 3 (route 1 is the backend's, which has MPI). `make_id` asks NCCL for an id:
// called on every rank for route 2, on rank 0 only for route 3. Throws Error saying how to pass the
// id when neither variable is set.
std::string nccl_id_from_environment(int rank, int world, std::size_t id_bytes,
                                     const std::function<std::string()>& make_id);

}  // namespace ldm::worker
