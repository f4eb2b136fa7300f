# One image for both binaries: odoo_exporter (the entrypoint) and
# odoo_healer (docker run --entrypoint /bin/odoo_healer ...).
#
# Like the Prometheus projects, the image copies prebuilt static binaries
# into a minimal base; here FROM scratch, so that building needs no
# registry. Build the context with make, then the image:
#
#   make image            # = make build + bin/ca-certificates.crt + docker build
#
# The binaries are static (make builds with CGO_ENABLED=0); the CA bundle
# lets them reach PostgreSQL, Odoo or Docker over TLS.
FROM scratch
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/odoo_exporter /bin/odoo_exporter
COPY bin/odoo_healer /bin/odoo_healer
# nobody: the exporter only reads. To read a Docker socket, run it with the
# socket's group (docker run --group-add <gid>).
USER 65534
# odoo_exporter, odoo_healer
EXPOSE 9769 9770
ENTRYPOINT ["/bin/odoo_exporter"]
