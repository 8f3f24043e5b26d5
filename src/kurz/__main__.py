from kurz.entry import main

main()
