# Sourced by the scripts: where MNIST is read from. $GENZOO_DATA wins; else a ../shared/data that
# already holds MNIST (as on the project's build machines); else genzoo downloads to ~/.cache/genzoo.
if [ -z "${GENZOO_DATA:-}" ] && [ -f "../shared/data/mnist/train-images-idx3-ubyte.gz" ]; then
    GENZOO_DATA="$(cd ../shared/data && pwd)"
    export GENZOO_DATA
fi
