// Size classes, as in AIStore's memsys: 32 small classes of 128 B … 4 KiB (step 128 B) and 32 page
// classes of 4 KiB … 128 KiB (step 4 KiB). 4 KiB appears in both families: a small MMSA hands out
// the small one, a page MMSA the page one.
//
// A class's buffers are cut from runs of whole pages. A small class uses 64 KiB runs, so every
// small size shares one run length and runs of different classes can replace each other without
// fragmenting the span allocator; a page class uses a run of exactly one buffer, so it wastes no
// run tail. Rounding a request up to its class costs at most one step (127 B or 4095 B).
//
//   class  size  slots  tail  waste  |  class  size      run       waste
//                  /run    (B)        |
//    0     128   512       0  0.0%   |  32    4 KiB     4 KiB   0.0%
//    1     256   256       0  0.0%   |  33    8 KiB     8 KiB   0.0%
//    2     384   170     256  0.4%   |  34   12 KiB    12 KiB   0.0%
//    3     512   128       0  0.0%   |  35   16 KiB    16 KiB   0.0%
//    4     640   102     256  0.4%   |  36   20 KiB    20 KiB   0.0%
//    5     768    85     256  0.4%   |  37   24 KiB    24 KiB   0.0%
//    6     896    73     128  0.2%   |  38   28 KiB    28 KiB   0.0%
//    7    1024    64       0  0.0%   |  39   32 KiB    32 KiB   0.0%
//    8    1152    56    1024  1.6%   |  40   36 KiB    36 KiB   0.0%
//    9    1280    51     256  0.4%   |  41   40 KiB    40 KiB   0.0%
//   10    1408    46     768  1.2%   |  42   44 KiB    44 KiB   0.0%
//   11    1536    42    1024  1.6%   |  43   48 KiB    48 KiB   0.0%
//   12    1664    39     640  1.0%   |  44   52 KiB    52 KiB   0.0%
//   13    1792    36    1024  1.6%   |  45   56 KiB    56 KiB   0.0%
//   14    1920    34     256  0.4%   |  46   60 KiB    60 KiB   0.0%
//   15    2048    32       0  0.0%   |  47   64 KiB    64 KiB   0.0%
//   16    2176    30     256  0.4%   |  48   68 KiB    68 KiB   0.0%
//   17    2304    28    1024  1.6%   |  49   72 KiB    72 KiB   0.0%
//   18    2432    26    2304  3.5%   |  50   76 KiB    76 KiB   0.0%
//   19    2560    25    1536  2.3%   |  51   80 KiB    80 KiB   0.0%
//   20    2688    24    1024  1.6%   |  52   84 KiB    84 KiB   0.0%
//   21    2816    23     768  1.2%   |  53   88 KiB    88 KiB   0.0%
//   22    2944    22     768  1.2%   |  54   92 KiB    92 KiB   0.0%
//   23    3072    21    1024  1.6%   |  55   96 KiB    96 KiB   0.0%
//   24    3200    20    1536  2.3%   |  56  100 KiB   100 KiB   0.0%
//   25    3328    19    2304  3.5%   |  57  104 KiB   104 KiB   0.0%
//   26    3456    18    3328  5.1%   |  58  108 KiB   108 KiB   0.0%
//   27    3584    18    1024  1.6%   |  59  112 KiB   112 KiB   0.0%
//   28    3712    17    2432  3.7%   |  60  116 KiB   116 KiB   0.0%
//   29    3840    17     256  0.4%   |  61  120 KiB   120 KiB   0.0%
//   30    3968    16    2048  3.1%   |  62  124 KiB   124 KiB   0.0%
//   31    4096    16       0  0.0%   |  63  128 KiB   128 KiB   0.0%

export const NUM_CLASSES: u32 = 64;
export const NUM_SMALL: u32 = 32;
const SMALL_STEP: u32 = 128;
const PAGE_STEP: u32 = 4096;
export const SMALL_RUN_PAGES: u32 = 16;

@inline export function classSize(c: u32): u32 {
  return c < NUM_SMALL ? SMALL_STEP * (c + 1) : PAGE_STEP * (c - NUM_SMALL + 1);
}

@inline export function runPages(c: u32): u32 {
  return c < NUM_SMALL ? SMALL_RUN_PAGES : c - NUM_SMALL + 1;
}

@inline export function slotsPerRun(c: u32): u32 {
  return (runPages(c) * PAGE_STEP) / classSize(c);
}
