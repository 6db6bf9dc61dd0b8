"""``cernvm-context make-iso``: context images for KVM, OpenNebula, OpenStack, CloudStack...

A context image is a small ISO 9660 disk that carries the user-data to a
virtual machine where no metadata service does: a plain KVM host, an
OpenNebula context CD, an OpenStack or CloudStack config drive. Each format
is laid out the way the cloud itself writes it, so that cloud-init's own
datasources, CernVM's older tools and this project's microboot stage all read
it.

The rooms: ``make_iso`` (the verb: its options, reading and checking its
inputs into a ``context.Context``), ``formats`` (the table of formats and
their labels), one module per format (``hepix``, ``opennebula``,
``configdrive``, ``cloudstack``, ``nocloud``: each builds its file tree from
the Context; the two context.sh formats share ``contextsh_writer``), and
``iso9660``, the one writer that puts a tree onto an image.

This package is not on the boot path. pycdlib, the ISO 9660 writer, is its
dependency alone and is imported only where the image is written.
"""
