from kurz.cli import main

main()
