"""The bottom layer: everything that touches untrusted input or the file system, shared by
``scaled_models`` and ``cam`` and importing neither.

- ``images``: the image decoder (format sniffing, pixel and byte limits, bounded-memory
  downscaling) for files and uploads;
- ``imagenet``: the 1000 ImageNet-1k classes (wnid, name, index), read from the CSV beside it;
- ``imagenet_val``: readers for ImageNet validation folders (three annotation layouts) and the
  ground-truth ``Box``;
- ``paths``: which folders and files a visitor may reach (allowed roots, links, ``..``, NUL);
- ``heavy``: the lock that lets one memory-heavy step (a huge decode, a gradient CAM) run at a
  time;
- ``storage``: atomic file writes (nothing half-written is ever read back);
"""
