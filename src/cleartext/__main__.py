from cleartext.cli import main

main()
